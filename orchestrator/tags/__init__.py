"""Tags and labels: what the user wrote (`-t`, tag rules, metadata-action's output) applied to
where the build stands (the git checkout, and GitHub's or GitLab's variables in CI)."""

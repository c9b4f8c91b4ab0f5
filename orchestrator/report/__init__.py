"""What orch tells people and CI: progress lines, GitHub and GitLab outputs, step summaries and
annotations, and the HTML report."""

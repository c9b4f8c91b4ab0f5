"""Building one image for many platforms: the request and its plan, the typed buildx spec and its
argv, running it (one buildx call, or one per platform merged into one list), and the result."""

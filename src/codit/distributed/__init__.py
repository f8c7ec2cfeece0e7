"""Scale-out on Ray: the settings (``config``, no Ray import) and generation on a pool of Ray
workers, each holding its own model pair (``ray_generate``). See docs/scale-out.md."""

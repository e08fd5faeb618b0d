"""Starting what trains, in processes of their own: runs (`runs.start_run`: validate,
check the batch split, record, start the engine) and sweeps (`sweeps`). Used by the CLI,
the window and the sweep driver; torch-free and cheap to import."""

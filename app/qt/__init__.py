"""The window's Qt widgets: the main window and shared widgets here, one package per
tab (editor, monitor, browser, compare)."""

"""Qt-free view models of the window: the plan document, schema fields, LR plan,
run series, browser rows. Tested without Qt; never imports it."""

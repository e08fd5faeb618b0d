"""The Playground tab: try finished stage outputs on a text, two side by side."""

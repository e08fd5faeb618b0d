"""The plan editor: plan view with stage cards, palette, inspector, LR preview."""

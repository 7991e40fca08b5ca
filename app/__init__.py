"""The FastAPI service: loads the active model version once and serves generated digits."""

"""The review web app: people read, flag, correct and blind-annotate records; their decisions go to reviews/."""

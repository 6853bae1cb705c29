"""The cell language grammar and the Lark parser built from it."""

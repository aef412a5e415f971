"""The model digest, re-exported where the store's users look for it; it lives in
claractl.platform.digest so plan can compute it without loading the store (SQLAlchemy)."""

from claractl.platform.digest import model_digest  # noqa: F401

"""claractl: one declarative project file, Terraform-style plan/apply, for a medical imaging AI platform."""

__version__ = "0.1.0"

"""The version of pescador."""

short_version = "2.2"
version = "2.2.0"

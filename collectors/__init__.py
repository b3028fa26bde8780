"""Protocol collectors. They depend on `dcim`; `dcim` never imports them at module level."""

"""Pure, sans-IO translators between API formats (one module per format pair)."""

"""Flask web application: chat widget, operator console, admin (the web issue)."""

"""The employee portal's server-rendered pages (Jinja templates, a little plain JavaScript)."""

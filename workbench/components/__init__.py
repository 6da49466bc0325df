"""Browser components of the app's pages (HTML, CSS and JavaScript run in the page)."""

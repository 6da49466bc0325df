"""The store: settings, engine and sessions, the one schema and its migrations, audit, media."""

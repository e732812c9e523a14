"""Common code of the mPort services: settings, logging, events, messaging and database helpers."""

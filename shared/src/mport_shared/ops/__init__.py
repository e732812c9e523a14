"""Operating mPort: the `mport-ops` command (cli) and the services' /ops endpoints it asks (api)."""

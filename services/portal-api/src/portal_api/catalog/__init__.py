"""The product catalog and the company's mobile policy."""

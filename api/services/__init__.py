"""Business rules behind the routes: submission with idempotency, live event streams."""

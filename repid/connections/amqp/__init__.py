"""AMQP 1.0 server and client (sans-IO protocol in `protocol`, asyncio in `transport`)."""

"""Job-layer brokers: message brokers (message-layer servers with queue declaration,
priorities and delays) and bucket brokers (argument and result storage)."""

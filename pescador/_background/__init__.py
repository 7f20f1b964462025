"""The background executors: worker processes, their wire and transports."""

"""Monitoring: quotas on the data API, detectors over the delivery stream, and the alerts they raise."""

"""Screening: what the platform decides about an app version — questionnaire, evidence, review, audits."""

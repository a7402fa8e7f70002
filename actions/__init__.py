"""Rasa custom actions (the dialogue issue); the action server imports every module here."""

"""OdysseyAI's chat API: one POST, one blocking JSON answer."""

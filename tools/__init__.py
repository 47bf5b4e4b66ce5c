"""Host tools around the firmware: the engine check / benchmark driver (engine_check)."""

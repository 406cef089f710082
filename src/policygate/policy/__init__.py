"""The policy author's workflow: test, check and list policies, explain, replay, waivers."""

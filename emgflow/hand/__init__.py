"""Hand outputs: models (joints, grips), the safety core between commands and a hand, the output
node base and the simulated hand's drawing. The node kinds live in ``emgflow.nodes.hand_*``."""

"""The research lab: a procedural math world in which the paper's findings can be measured in miniature."""

"""The lab's procedural math world, below every stage: its problems and corpora (`world`), their files
behind `lab://` (`files`), and the exact and error-making solvers behind the `lab` engine (`solver`).
The grid that trains and evaluates on it is `mathgpt.lab`."""

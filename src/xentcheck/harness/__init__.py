"""Case loading and validation, input generation, sweep expansion, running, comparison."""

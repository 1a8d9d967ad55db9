"""Safety: the ordered gate chain, its facts collector, confirmation tokens and policy."""

"""Backend adapters, one runtime per module; none is imported by ``import slmkit``."""

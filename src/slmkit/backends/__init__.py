"""Backend adapters. Each module here is one runtime; none is imported by ``import slmkit``."""

"""The compiler: check, IR, printer, hash, lowering and emitters."""

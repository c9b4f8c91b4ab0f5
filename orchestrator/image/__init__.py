"""What an image holds and whether it is right: one inspection model, its readers, verify, --deep and ELF."""

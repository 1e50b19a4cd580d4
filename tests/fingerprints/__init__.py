"""What a check read, so a cache knows when it moved: here, bytecode that hides an edit."""

"""Bad input: exit 2 and one stderr line naming the culprit and the fix."""

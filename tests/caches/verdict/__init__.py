"""The verdict cache: served when nothing moved, never when something did."""

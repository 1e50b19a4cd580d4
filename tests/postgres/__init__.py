"""The throwaway server and the scratch databases made on a server the user names."""

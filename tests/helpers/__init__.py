"""What tests share: the Kimi stand-in, servers for mail and single sign-on, documents, and
the steps a test takes through the socket, the pages and the browser."""

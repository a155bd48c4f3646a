-- A node stopping: its members leave every room at once.
-- ARGV: node.
remove_node(ARGV[1])
return 1

variable "bucket_name" {
  description = "Name of the bucket that carries the packets."
  type        = string
}

variable "nodes" {
  description = <<-EOT
    Each node's name (its IAM user is hoshino-NAME) and its IPv6 address, in RFC 5952 compressed form
    as hoshino-agent prints it at start (e.g. fd5e:59b8:f71d:9a3e::b): its inbox is that address.
  EOT
  type        = map(string)

  validation {
    condition     = alltrue([for name in keys(var.nodes) : can(regex("^[A-Za-z0-9+=,.@_-]{1,56}$", name))])
    error_message = "A node name must be 1 to 56 of A-Z a-z 0-9 + = , . @ _ - (IAM user names, less the hoshino- prefix)."
  }

  # The inbox in every key and policy is the address's compressed text: a differently written address
  # would give a node a policy for an inbox nobody writes to. cidrhost prints RFC 5952 text.
  validation {
    condition = alltrue([
      for address in values(var.nodes) : try(cidrhost("${address}/128", 0) == address, false)
    ])
    error_message = "Each address must be an IPv6 address in RFC 5952 compressed form, e.g. fd5e:59b8:f71d:9a3e::b (as hoshino-agent prints it)."
  }
}

variable "key_prefix" {
  description = "The nodes' --key-prefix, when several networks share the bucket (default: none)."
  type        = string
  default     = ""

  # The prefix lands inside policy ARNs, where * and ? are wildcards and $ starts a policy variable,
  # and inside JSON strings: only S3's safe characters that mean nothing there are let through.
  validation {
    condition     = can(regex("^[A-Za-z0-9!_.'()/-]*$", var.key_prefix))
    error_message = "The key prefix may hold only A-Z a-z 0-9 ! _ . ' ( ) / -."
  }

  # hoshino-agent adds a missing trailing / to its --key-prefix: without it, net1* would also grant net10...
  validation {
    condition     = can(regex("^$|/$", var.key_prefix))
    error_message = "The key prefix must end in / (e.g. net1/), as hoshino-agent uses it: without it, net1* would also grant net10's objects."
  }
}

# Replace a NAT gateway (exit_node.tf): all three stay unused while vpc_id is null.

variable "vpc_id" {
  description = "The VPC whose private subnets reach the internet through a Hoshino exit node instead of a NAT gateway (default: none, and exit_node.tf makes nothing)."
  type        = string
  default     = null
}

variable "private_route_table_ids" {
  description = "The route tables of the private subnets: the S3 gateway endpoint adds its route to each. Add the exit node's subnet's table too, to keep its own S3 traffic off the internet gateway."
  type        = list(string)
  default     = []
}

variable "exit_node_egress" {
  description = "What the exit node may reach for its peers, by name: a protocol (tcp or udp) and a port, each allowed to anywhere over IPv4 and IPv6. HTTPS also carries the exit node's SQS doorbell. The VPC's resolver is not filtered by security groups."
  type = map(object({
    protocol = string
    port     = number
  }))
  default = {
    https = { protocol = "tcp", port = 443 }
    http  = { protocol = "tcp", port = 80 }
  }

  validation {
    condition = alltrue([
      for rule in values(var.exit_node_egress) : contains(["tcp", "udp"], rule.protocol) && rule.port >= 1 && rule.port <= 65535 && floor(rule.port) == rule.port
    ])
    error_message = "Each rule is a protocol, tcp or udp, and one port from 1 to 65535: name each port the private nodes need rather than opening every one."
  }
}

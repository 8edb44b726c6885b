# Replace a NAT gateway (README.md, "Replace a NAT gateway"): the private subnets reach S3 through a
# gateway endpoint, which is free, and everything else through one exit node (hoshino-agent
# --advertise-exit-node) that reaches the internet itself. Nothing here is made unless vpc_id is set.
# The exit node's instance is yours to run: give it the security group below and a public address.

locals {
  exit_node    = var.vpc_id == null ? {} : { exit = var.vpc_id }
  egress_rules = var.vpc_id == null ? [] : [for name, rule in var.exit_node_egress : merge(rule, { name = name })]
}

# The private subnets' way to the bucket: S3 gateway endpoints cost nothing, per hour or per GB, and put
# a route to S3's prefix list in each route table named. Its policy stays AWS's default (full access):
# the machines of these subnets may use other buckets, the packages of their distribution included.
resource "aws_vpc_endpoint" "s3" {
  for_each          = local.exit_node
  vpc_id            = each.value
  service_name      = "com.amazonaws.${data.aws_region.current.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = var.private_route_table_ids

  lifecycle {
    precondition {
      condition     = length(var.private_route_table_ids) > 0
      error_message = "Name the route tables of the private subnets (private_route_table_ids): the endpoint adds S3's route to them."
    }
  }
}

# The exit node's only firewall: nothing comes in, since every byte for it arrives as an object in the
# bucket, and out only the ports its peers' traffic needs (exit_node_egress) and HTTPS to S3.
resource "aws_security_group" "exit_node" {
  for_each    = local.exit_node
  name        = "hoshino-exit-node"
  description = "Hoshino exit node: no inbound; outbound to S3 and to the ports its peers use"
  vpc_id      = each.value

  #checkov:skip=CKV2_AWS_5:The exit node's instance is the user's to launch (any AMI, any size); this module hands it the group as an output to attach.
}

resource "aws_vpc_security_group_egress_rule" "exit_node_s3" {
  for_each          = local.exit_node
  security_group_id = aws_security_group.exit_node[each.key].id
  description       = "HTTPS to S3 through the gateway endpoint: the bucket that carries the packets"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = aws_vpc_endpoint.s3[each.key].prefix_list_id
}

resource "aws_vpc_security_group_egress_rule" "exit_node_ipv4" {
  for_each          = { for rule in local.egress_rules : "${rule.name}-ipv4" => rule }
  security_group_id = aws_security_group.exit_node["exit"].id
  description       = "${each.value.name}: what the private nodes reach through the exit node, over IPv4"
  ip_protocol       = each.value.protocol
  from_port         = each.value.port
  to_port           = each.value.port
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "exit_node_ipv6" {
  for_each          = { for rule in local.egress_rules : "${rule.name}-ipv6" => rule }
  security_group_id = aws_security_group.exit_node["exit"].id
  description       = "${each.value.name}: what the private nodes reach through the exit node, over IPv6"
  ip_protocol       = each.value.protocol
  from_port         = each.value.port
  to_port           = each.value.port
  cidr_ipv6         = "::/0"
}

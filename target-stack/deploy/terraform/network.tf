# Security groups: internet -> ALB (443, and 80 for the redirect only);
# ALB -> tasks on 8080 only; tasks -> RDS on 3306 only; tasks -> AWS APIs on 443.

resource "aws_security_group" "alb" {
  name        = "${var.name}-alb"
  description = "peakload-stack ALB: HTTPS in from load generators, 8080 out to tasks"
  vpc_id      = var.vpc_id
}

resource "aws_security_group" "tasks" {
  name        = "${var.name}-tasks"
  description = "peakload-stack ECS tasks: 8080 from the ALB and Service Connect peers"
  vpc_id      = var.vpc_id
}

resource "aws_security_group" "db" {
  name        = "${var.name}-db"
  description = "peakload-stack RDS MySQL: 3306 from the ECS tasks only"
  vpc_id      = var.vpc_id
}

locals {
  alb_ingress = { for p in setproduct(var.alb_ingress_cidrs, [80, 443]) : "${p[0]}:${p[1]}" => { cidr = p[0], port = p[1] } }
}

resource "aws_vpc_security_group_ingress_rule" "alb_in" {
  for_each          = local.alb_ingress
  security_group_id = aws_security_group.alb.id
  description       = each.value.port == 443 ? "HTTPS from load generators" : "HTTP from load generators (redirected to HTTPS)"
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
  cidr_ipv4         = each.value.cidr
}

resource "aws_vpc_security_group_egress_rule" "alb_to_tasks" {
  security_group_id            = aws_security_group.alb.id
  description                  = "ALB to ECS tasks on the container port"
  ip_protocol                  = "tcp"
  from_port                    = local.container_port
  to_port                      = local.container_port
  referenced_security_group_id = aws_security_group.tasks.id
}

resource "aws_vpc_security_group_ingress_rule" "tasks_from_alb" {
  security_group_id            = aws_security_group.tasks.id
  description                  = "Container port from the ALB"
  ip_protocol                  = "tcp"
  from_port                    = local.container_port
  to_port                      = local.container_port
  referenced_security_group_id = aws_security_group.alb.id
}

resource "aws_vpc_security_group_ingress_rule" "tasks_from_tasks" {
  security_group_id            = aws_security_group.tasks.id
  description                  = "Container port between stack tasks (Service Connect)"
  ip_protocol                  = "tcp"
  from_port                    = local.container_port
  to_port                      = local.container_port
  referenced_security_group_id = aws_security_group.tasks.id
}

resource "aws_vpc_security_group_egress_rule" "tasks_to_tasks" {
  security_group_id            = aws_security_group.tasks.id
  description                  = "Container port between stack tasks (Service Connect)"
  ip_protocol                  = "tcp"
  from_port                    = local.container_port
  to_port                      = local.container_port
  referenced_security_group_id = aws_security_group.tasks.id
}

resource "aws_vpc_security_group_egress_rule" "tasks_to_db" {
  security_group_id            = aws_security_group.tasks.id
  description                  = "MySQL to RDS"
  ip_protocol                  = "tcp"
  from_port                    = 3306
  to_port                      = 3306
  referenced_security_group_id = aws_security_group.db.id
}

resource "aws_vpc_security_group_egress_rule" "tasks_to_aws_apis" {
  for_each          = toset(var.task_egress_cidrs)
  security_group_id = aws_security_group.tasks.id
  description       = "HTTPS to AWS APIs (SQS, DynamoDB, Secrets Manager, ECR, CloudWatch Logs)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_ingress_rule" "db_from_tasks" {
  security_group_id            = aws_security_group.db.id
  description                  = "MySQL from the ECS tasks"
  ip_protocol                  = "tcp"
  from_port                    = 3306
  to_port                      = 3306
  referenced_security_group_id = aws_security_group.tasks.id
}

package ec2

import "github.com/aws/aws-sdk-go-v2/aws"

// SetPageSize makes ListManaged page in small steps so tests see pagination.
func SetPageSize(c *Cloud, n int32) { c.pageSize = n }

// CredentialsOf returns the credentials the clients sign with.
func CredentialsOf(c *Cloud, region string) aws.CredentialsProvider {
	return c.clients[region].Options().Credentials
}

package ec2

import "github.com/aws/aws-sdk-go-v2/aws"

// SetPageSize makes ListManaged page in small steps so tests see pagination.
func SetPageSize(c *Cloud, n int32) { c.pageSize = n }

// SetTemplatePageSize does the same for ListManagedTemplates.
func SetTemplatePageSize(c *Cloud, n int32) { c.templatePageSize = n }

// The limits ListManaged works in, for tests that predict its calls.
const (
	DefaultPageSize         = defaultPageSize
	DefaultTemplatePageSize = defaultTemplatePageSize
	MaxFilterValues         = maxFilterValues
)

// CredentialsOf returns the credentials the clients sign with.
func CredentialsOf(c *Cloud, region string) aws.CredentialsProvider {
	return c.clients[region].Options().Credentials
}

"""The review APIs through the official Kubernetes Python client.

Usage: reviews_check.py KUBECONFIG TOKEN
Asks a SelfSubjectAccessReview, a SubjectAccessReview, a
SelfSubjectRulesReview and a TokenReview of TOKEN (a service-account token
of a/default); exits non-zero with a message on the first answer that is not
as Kubernetes gives it.
"""
import sys

from kubernetes import client, config
from kubernetes.client.rest import ApiException


def main(kubeconfig, token):
    config.load_kube_config(config_file=kubeconfig)
    authz = client.AuthorizationV1Api()
    authn = client.AuthenticationV1Api()

    ssar = authz.create_self_subject_access_review(
        client.V1SelfSubjectAccessReview(
            spec=client.V1SelfSubjectAccessReviewSpec(
                resource_attributes=client.V1ResourceAttributes(
                    namespace="a", verb="list", resource="pods"
                )
            )
        )
    )
    assert ssar.status.allowed is True, f"the admin may list pods: {ssar.status}"

    sar = authz.create_subject_access_review(
        client.V1SubjectAccessReview(
            spec=client.V1SubjectAccessReviewSpec(
                user="jane",
                extra={"scopes": ["view"]},
                non_resource_attributes=client.V1NonResourceAttributes(
                    path="/healthz", verb="get"
                ),
            )
        )
    )
    assert isinstance(sar.status.allowed, bool), f"no answer: {sar.status}"
    assert sar.spec.extra == {"scopes": ["view"]}, f"extra not kept: {sar.spec}"

    try:
        authz.create_subject_access_review(
            client.V1SubjectAccessReview(
                spec=client.V1SubjectAccessReviewSpec(
                    non_resource_attributes=client.V1NonResourceAttributes(
                        path="/healthz", verb="get"
                    )
                )
            )
        )
        raise AssertionError("a review without a user was accepted")
    except ApiException as e:
        assert e.status == 422, f"not Invalid: {e.status} {e.body}"

    rules = authz.create_self_subject_rules_review(
        client.V1SelfSubjectRulesReview(
            spec=client.V1SelfSubjectRulesReviewSpec(namespace="a")
        )
    )
    assert rules.status.resource_rules, f"no rules: {rules.status}"
    assert rules.status.incomplete is False, f"incomplete: {rules.status}"

    review = authn.create_token_review(
        client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token))
    )
    assert review.status.authenticated is True, f"not authenticated: {review.status}"
    assert (
        review.status.user.username == "system:serviceaccount:a:default"
    ), f"wrong user: {review.status.user}"
    assert "system:serviceaccounts:a" in review.status.user.groups

    review = authn.create_token_review(
        client.V1TokenReview(spec=client.V1TokenReviewSpec(token="nope"))
    )
    assert not review.status.authenticated, f"a bad token: {review.status}"
    assert review.status.error, "no error for a bad token"
    print("python reviews: ok")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

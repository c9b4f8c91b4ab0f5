"""The shared publish transaction: an index goes into its repository by digest (stage), is read
back and verified, and only then does every tag move to it, or none (promote). Every product
(builds, lists, releases) ends here."""
